"""The CAS server for the ENT's apps (CAS protocol 2.0 and 3.0).

- `tickets.py`: service, proxy and proxy-granting tickets over the database (issue, validate, proxy);
- `responses.py`: the CAS documents (serviceResponse in XML or JSON, the back-channel logoutRequest);
- `back_channel_logout.py`, `callbacks.py`: telling the apps a session ended; the outgoing HTTP calls;
- `http.py`: the `/cas/` endpoints.

Which services may receive tickets is `rules/service_registry.py`; what they receive, `rules/ent_attributes.py`.
"""
