"""Tooling beside Relais, not part of it (not installed, not in the image): run from the checkout.

- `demo/`: `make demo` (`python -m tools.demo`), the sample academy end to end;
- `bench/`: `make bench-directory|provisioning|sso|vault` (`python -m tools.bench.<service>`);
- `synthetic_academy.py`: a realistic anonymised AAF academy of any size, for benchmarks and load tests;
- `local_idp.py`: a national IdP stand-in (pysaml2) for the demo and the SSO benchmark, never for production.

`SHARED` is the folder of the sample AAF export and the GAR's XSDs: `RELAIS_SHARED_DIR`, else `shared/`
beside the checkout (as `tests/conftest.py` finds it).
"""

import os
from pathlib import Path

SHARED = Path(os.environ.get("RELAIS_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
