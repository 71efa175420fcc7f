"""The files provisioning writes for others.

- `gar.py`: the GAR feed (Etab, Eleve, Enseignant, Groupe, RespAff), complete or delta, and its XSD check;
- `gar_exclusions.py`: which records the GAR feed leaves out, and why (no I/O);
- `oneroster_csv.py`: an app's OneRoster 1.2 CSV bundle.
"""
