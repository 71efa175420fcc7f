"""The usage service's use cases: ingesting events, closing a period, making a report."""
