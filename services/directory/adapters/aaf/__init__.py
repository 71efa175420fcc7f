"""Reading AAF exports: files in, records out.

* `file_names.py` — what an export's file name says (Complet or Delta, family), and the files an import reads;
* `reader.py` — reading a file safely and as a stream into records;
* `pieces.py` — reading a large file in pieces that parse independently (for parser processes).
"""
