"""What the usage service writes for people: report files (CSV, JSON) and charts (SVG, PNG)."""
