"""An app's OneRoster 1.2 CSV bundle (bulk): its view (`api.oneroster_view.AppView`) written as the CSV binding's files.

`manifest.csv` and `academicSessions`, `orgs`, `courses`, `classes`,
`users`, `roles`, `enrollments` (every file, even empty: a bulk file with no
row says there are none), in a folder or a `.zip`. Users, roles and
enrollments are written while the accounts stream by.
"""

from __future__ import annotations

import csv
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..api.oneroster_view import AppView, ClassKey, role_id

VERSION = "1.2"
MANIFEST_VERSION = "1.0"

# The CSV binding (OneRoster 1.2 CSV, bulk): file -> columns in order.
CSV_COLUMNS: dict[str, tuple[str, ...]] = {
    "academicSessions": ("sourcedId", "status", "dateLastModified", "title", "type", "startDate", "endDate",
                         "parentSourcedId", "schoolYear"),
    "classes": ("sourcedId", "status", "dateLastModified", "title", "grades", "courseSourcedId", "classCode",
                "classType", "location", "schoolSourcedId", "termSourcedIds", "subjects", "subjectCodes", "periods"),
    "courses": ("sourcedId", "status", "dateLastModified", "schoolYearSourcedId", "title", "courseCode", "grades",
                "orgSourcedId", "subjects", "subjectCodes"),
    "enrollments": ("sourcedId", "status", "dateLastModified", "classSourcedId", "schoolSourcedId", "userSourcedId",
                    "role", "primary", "beginDate", "endDate"),
    "orgs": ("sourcedId", "status", "dateLastModified", "name", "type", "identifier", "parentSourcedId"),
    "roles": ("sourcedId", "status", "dateLastModified", "userSourcedId", "roleType", "role", "beginDate", "endDate",
              "orgSourcedId", "userProfileSourcedId"),
    "users": ("sourcedId", "status", "dateLastModified", "enabledUser", "username", "userIds", "givenName",
              "familyName", "middleName", "identifier", "email", "sms", "phone", "agentSourcedIds", "grades",
              "password", "userMasterIdentifier", "resourceSourcedIds", "preferredGivenName", "preferredMiddleName",
              "preferredFamilyName", "primaryOrgSourcedId", "pronouns"),
}
# Every file the manifest of a 1.2 bundle names, in its order.
MANIFEST_FILES = ("academicSessions", "categories", "classes", "classResources", "courses", "courseResources",
                  "demographics", "enrollments", "lineItemLearningObjectiveIds", "lineItems", "lineItemScoreScales",
                  "orgs", "resources", "resultLearningObjectiveIds", "results", "resultScoreScales", "roles",
                  "scoreScales", "userProfiles", "userResources", "users")
# CSV column -> the REST field holding the reference(s) it flattens.
_REF_COLUMNS = {
    "parentSourcedId": "parent", "courseSourcedId": "course", "schoolSourcedId": "school", "termSourcedIds": "terms",
    "schoolYearSourcedId": "schoolYear", "orgSourcedId": "org", "classSourcedId": "class", "userSourcedId": "user",
    "agentSourcedIds": "agents", "resourceSourcedIds": "resources", "primaryOrgSourcedId": "primaryOrg",
    "userProfileSourcedId": "userProfile",
}
_CSV_RENAMED = {"preferredGivenName": "preferredFirstName", "preferredMiddleName": "preferredMiddleName",
                "preferredFamilyName": "preferredLastName"}


def csv_row(file: str, entity: dict[str, Any], *, bulk: bool = True) -> list[str]:
    """One entity as a row of `file`; in a bulk file `status` and `dateLastModified` stay empty."""
    row = []
    for column in CSV_COLUMNS[file]:
        if bulk and column in ("status", "dateLastModified"):
            row.append("")
            continue
        value = entity.get(_REF_COLUMNS.get(column) or _CSV_RENAMED.get(column, column))
        if column in _REF_COLUMNS and value is not None:
            value = [v["sourcedId"] for v in value] if isinstance(value, list) else (
                value["sourcedId"] if isinstance(value, dict) else value)
        if isinstance(value, list):
            value = ",".join(value)
        row.append("" if value is None else str(value))
    return row


def role_rows(user: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """roles.csv records of a user (the REST binding nests them in the user)."""
    for r in user["roles"]:
        yield {"sourcedId": role_id(user["sourcedId"], r["org"]["sourcedId"]), "status": user["status"],
               "dateLastModified": user["dateLastModified"], "user": {"sourcedId": user["sourcedId"]},
               "roleType": r["roleType"], "role": r["role"], "org": r["org"]}


@dataclass
class BundleReport:
    path: str
    rows: dict[str, int]  # file name -> data rows (header excluded)

    @property
    def files(self) -> list[str]:
        return ["manifest.csv", *(f"{name}.csv" for name in self.rows)]

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "files": self.files, "rows": {f"{k}.csv": v for k, v in self.rows.items()}}


class _CsvFiles:
    def __init__(self, folder: Path):
        self.folder = folder
        self.handles: dict[str, IO[str]] = {}
        self.writers: dict[str, Any] = {}  # csv writers (the csv module's type is private)
        self.rows: dict[str, int] = {}

    def writer(self, name: str) -> Any:
        if name not in self.writers:
            handle = open(self.folder / f"{name}.csv", "w", encoding="utf-8", newline="")
            self.handles[name] = handle
            self.writers[name] = csv.writer(handle, lineterminator="\r\n")
            self.writers[name].writerow(CSV_COLUMNS[name])
            self.rows[name] = 0
        return self.writers[name]

    def write(self, name: str, entity: dict[str, Any]) -> None:
        self.writer(name).writerow(csv_row(name, entity))
        self.rows[name] += 1

    def close(self) -> None:
        for handle in self.handles.values():
            handle.close()


def write_bundle(view: AppView, out: Path, progress: Callable[[int], object] | None = None) -> BundleReport:
    """Write the app's OneRoster 1.2 CSV bundle (bulk) into the folder `out`, or the zip file `out` if it ends in .zip.

    Users, roles and enrollments are written while the accounts stream by;
    only the classes (a few per school) are kept until the end. `progress` is
    called with the number of accounts done since its last call.
    """
    as_zip = out.suffix.lower() == ".zip"
    if as_zip:
        out.parent.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=".oneroster-", dir=out.parent))
    else:
        out.mkdir(parents=True, exist_ok=True)
        folder = out
    try:
        files = _CsvFiles(folder)
        try:
            for name in ("orgs", "academicSessions", "courses", "classes", "users", "roles", "enrollments"):
                files.writer(name)  # every file, even empty: a bulk file with no row says there are none
            for org in view.orgs():
                files.write("orgs", org)
            for session in view.academic_sessions():
                files.write("academicSessions", session)
            classes: set[ClassKey] = set()
            done = 0
            for w in view.walked():
                files.write("users", w.user)
                for r in role_rows(w.user):
                    files.write("roles", r)
                for e in w.enrollments:
                    files.write("enrollments", e)
                classes |= w.classes
                done += 1
                if progress and done % 1000 == 0:
                    progress(1000)
            if progress and done % 1000:
                progress(done % 1000)
            for course in view.courses(classes):
                files.write("courses", course)
            for klass in view.classes(classes):
                files.write("classes", klass)
        finally:
            files.close()
        rows = dict(sorted(files.rows.items()))
        with open(folder / "manifest.csv", "w", encoding="utf-8", newline="") as handle:
            manifest = csv.writer(handle, lineterminator="\r\n")
            manifest.writerow(("propertyName", "value"))
            manifest.writerow(("manifest.version", MANIFEST_VERSION))
            manifest.writerow(("oneroster.version", VERSION))
            for name in MANIFEST_FILES:
                manifest.writerow((f"file.{name}", "bulk" if name in rows else "absent"))
            manifest.writerow(("source.systemName", "Relais"))
            manifest.writerow(("source.systemCode", view.app.id))
        report = BundleReport(str(out), rows)
        if as_zip:
            partial = out.with_name(out.name + ".part")
            with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                for name in report.files:
                    zf.write(folder / name, arcname=name)
            os.replace(partial, out)
        return report
    finally:
        if as_zip:
            shutil.rmtree(folder, ignore_errors=True)
