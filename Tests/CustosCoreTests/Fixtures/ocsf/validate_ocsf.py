#!/usr/bin/env python3
"""Validates OCSF records (NDJSON) against the JSON Schema of their class in a pinned OCSF version.

Usage: validate_ocsf.py VERSION FILE

Each line of FILE is one OCSF record. The schema of its class (by class_uid) is generated
by the PyPI package `ocsf-json-schema` from the OCSF VERSION it ships (1.3.0 for Custos),
and the record is checked with `jsonschema` (Draft 2020-12; additionalProperties are not
allowed, so a misnamed attribute fails). Also checks metadata.version == VERSION.

Exit status: 0 all valid (prints "valid N records: <class counts>"), 1 a record is invalid
(each error printed), 3 `ocsf_json_schema` or `jsonschema` cannot be imported (the caller
decides whether that is a skip).
"""
import json
import sys

try:
    import jsonschema
    from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema
except ImportError as e:  # pragma: no cover
    print("cannot import: %s (python3 -m pip install ocsf-json-schema jsonschema)" % e)
    sys.exit(3)

version, path = sys.argv[1], sys.argv[2]
schema = OcsfJsonSchemaEmbedded(get_ocsf_schema(version=version))
validators = {}
counts = {}
errors = 0
with open(path, encoding="utf-8") as f:
    for n, line in enumerate(f, 1):
        if not line.strip():
            continue
        record = json.loads(line)
        uid = record.get("class_uid")
        try:
            name = schema.lookup_class_name_from_uid(uid)
        except Exception as e:
            print("line %d: class_uid %r is not a class of OCSF %s: %s" % (n, uid, version, e))
            errors += 1
            continue
        if name not in validators:
            validators[name] = jsonschema.Draft202012Validator(schema.get_class_schema(name))
        for err in validators[name].iter_errors(record):
            print("line %d (%s): %s at /%s" % (n, name, err.message, "/".join(str(p) for p in err.absolute_path)))
            errors += 1
        if record.get("metadata", {}).get("version") != version:
            print("line %d: metadata.version is %r, not %s" % (n, record.get("metadata", {}).get("version"), version))
            errors += 1
        counts[name] = counts.get(name, 0) + 1
if errors:
    print("%d error(s)" % errors)
    sys.exit(1)
print("valid %d records: %s" % (sum(counts.values()), ", ".join("%s %d" % kv for kv in sorted(counts.items()))))
