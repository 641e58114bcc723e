"""Load an export spec into a FiftyOne dataset; runs in the FiftyOne venv, not the project's.

    <fiftyone venv>/bin/python fiftyone_loader.py SPEC.jsonl     # create (replace) the dataset
    <fiftyone venv>/bin/python fiftyone_loader.py --read NAME    # what a dataset holds, as JSON

FiftyOne 1.22 pins opencv-python-headless<5 and starlette<1.4, which the project's venv (opencv
5, dagster-webserver's starlette) cannot take, so it lives in a venv of its own
(scripts/setup_fiftyone_venv.sh) and this file imports nothing but the standard library and
fiftyone. fiftyone_export.py writes the spec: a header line {"name", "fields": {name: type}},
then one line per sample {"filepath", "tags", "fields"}. Prints one JSON line: what was loaded
(read back from the database, not from the spec).
"""

import json
import sys


def _field_types(fo):
    return {"float": fo.FloatField, "int": fo.IntField, "string": fo.StringField, "bool": fo.BooleanField,
            "list<string>": (fo.ListField, fo.StringField)}


def load(spec_path: str) -> dict:
    import fiftyone as fo

    with open(spec_path, encoding="utf-8") as fh:
        header = json.loads(fh.readline())
        samples = [json.loads(line) for line in fh if line.strip()]
    dataset = fo.Dataset(header["name"], persistent=True, overwrite=True)
    dataset.media_type = "video"
    types = _field_types(fo)
    # declared up front: a field whose first values are null would otherwise get no type
    for name, kind in header["fields"].items():
        ftype = types[kind]
        if isinstance(ftype, tuple):
            dataset.add_sample_field(name, ftype[0], subfield=ftype[1])
        else:
            dataset.add_sample_field(name, ftype)
    dataset.add_samples([fo.Sample(filepath=s["filepath"], tags=s["tags"], **s["fields"]) for s in samples])
    dataset.info = header.get("info", {})
    dataset.save()
    return read(header["name"])


def read(name: str) -> dict:
    import fiftyone as fo

    dataset = fo.load_dataset(name)
    schema = dataset.get_field_schema()
    return {"name": dataset.name, "samples": len(dataset), "persistent": dataset.persistent,
            "media_type": dataset.media_type, "fields": sorted(schema),
            "tags": dataset.count_sample_tags(), "info": dataset.info,
            "values": {field: dataset.values(field) for field in ("filepath", "video_id", "status")
                       if field in schema or field == "filepath"}}


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--read":
        print(json.dumps(read(sys.argv[2])))
    elif len(sys.argv) == 2:
        print(json.dumps(load(sys.argv[1])))
    else:
        sys.exit(__doc__)
