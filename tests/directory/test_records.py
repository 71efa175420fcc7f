"""Reading one record's attributes: the one-walk path for the usual shape and the general one agree."""

from __future__ import annotations

import pytest

from services.directory.adapters.aaf import reader
from services.directory.adapters.aaf.reader import AafRecord, RecordError, iter_records

HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n<ficAlimMENESR>\n<addRequest>\n'
        '<operationalAttributes><attr name="categoriePersonne"><value>Eleve</value></attr></operationalAttributes>\n'
        '<identifier><id>J1</id></identifier>\n')
TAIL = "</addRequest>\n</ficAlimMENESR>\n"


def read_one(tmp_path, body: str, plain: bool = True) -> AafRecord | RecordError:
    path = tmp_path / "one.xml"
    path.write_text(HEAD + body + TAIL, encoding="utf-8")
    if not plain:
        saved = reader._read_attributes_plain
        reader._read_attributes_plain = lambda _container, _attributes: False
    try:
        [record] = list(iter_records(path))
    finally:
        if not plain:
            reader._read_attributes_plain = saved
    return record


def test_the_usual_shape_reads_names_and_stripped_non_empty_values(tmp_path):
    rec = read_one(tmp_path, '<attributes>\n<attr name="sn"><value> Durand </value></attr>\n'
                             '<attr name="ENTEleveClasses"><value>S$4A</value><value/><value>S$4B</value></attr>\n'
                             '<attr name="mail"/>\n<attr name="sn"><value>Martin</value></attr>\n</attributes>\n')
    assert isinstance(rec, AafRecord)
    assert rec.attributes == {"sn": ["Durand", "Martin"], "ENTEleveClasses": ["S$4A", "S$4B"], "mail": []}


@pytest.mark.parametrize("body", [
    # nameless or empty-named attr: an error naming the element
    '<attributes><attr><value>x</value></attr></attributes>',
    '<attributes><attr name=""><value>x</value></attr></attributes>',
    '<attributes><other><value>x</value></other></attributes>',
    # shapes other than attributes/attr/value
    '<attributes><value>stray</value><attr name="sn"><value>A</value></attr></attributes>',
    '<attributes><attr name="sn"><attr name="gn"><value>A</value></attr></attr></attributes>',
    '<attributes><attr name="sn"><value>A<b>bold</b></value></attr></attributes>',
    '<attributes><attr name="sn"><v>A</v><value>B</value></attr></attributes>',
    '<attributes><attr name="sn"><value>A</value><!-- note --><value>B</value></attr></attributes>',
    '<attributes><attr name="sn">text<value>A</value>tail</attr></attributes>',
    '<modifications><attr name="sn"><value>A</value></attr></modifications>'
    '<attributes><attr name="sn"><value>B</value></attr></attributes>',
])
def test_other_shapes_read_as_the_general_path_reads_them(tmp_path, body):
    assert read_one(tmp_path, body) == read_one(tmp_path, body, plain=False)


def test_a_nameless_attr_is_still_reported_with_its_line(tmp_path):
    rec = read_one(tmp_path, '<attributes>\n<attr name="sn"><value>A</value></attr>\n<attr><value>x</value></attr>\n'
                             '</attributes>\n')
    assert isinstance(rec, RecordError)
    assert (rec.line, rec.identifier, rec.reason) == (3, "J1", "an <attr> element has no name")
