"""
GitHub's official OpenAPI description (npm @octokit/openapi, installed into tests/node_modules by
scripts/install-test-tools) and a validator for the part of OpenAPI 3.0 schemas it uses: $ref,
type, nullable, properties, required, additionalProperties, items, enum, oneOf, anyOf, allOf.
Formats, patterns and numeric bounds are not checked: the emulator's fidelity is about shapes
and keys, and GitHub's own examples do not always honour the formats either.
"""
import json
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
NODE_MODULES = TESTS / "node_modules"
SPEC_PATH = NODE_MODULES / "@octokit" / "openapi" / "generated" / "api.github.com.json"
FIXTURES = NODE_MODULES / "@octokit" / "fixtures" / "scenarios" / "api.github.com"

_spec = None


def spec():
    global _spec
    if _spec is None:
        with open(SPEC_PATH, encoding="utf-8") as f:
            _spec = json.load(f)
    return _spec


def response_schema(path, status, media="application/json", method="get"):
    """The schema GitHub documents for `method path` answering `status` with `media`."""
    op = spec()["paths"][path][method]
    resp = op["responses"][str(status)]
    while "$ref" in resp:
        resp = resolve(resp["$ref"])
    return resp["content"][media]["schema"]


def resolve(ref):
    assert ref.startswith("#/"), ref
    node = spec()
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


_TYPES = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
}


def validate(value, schema, where="$"):
    """A list of human-readable violations (empty when `value` matches `schema`)."""
    errors = []
    _check(value, schema, where, errors)
    return errors


def _check(v, s, where, errs):
    while "$ref" in s:
        s = resolve(s["$ref"])
    if v is None and s.get("nullable"):
        return
    if "allOf" in s:
        for sub in s["allOf"]:
            _check(v, sub, where, errs)
    if "anyOf" in s:
        if not any(not validate(v, sub, where) for sub in s["anyOf"]):
            errs.append(f"{where}: matches none of anyOf")
    if "oneOf" in s:
        n = sum(1 for sub in s["oneOf"] if not validate(v, sub, where))
        if n != 1:
            # Report the closest branch's errors, which say what is actually wrong.
            best = min((validate(v, sub, where) for sub in s["oneOf"]), key=len)
            errs.append(f"{where}: matches {n} of oneOf (want 1): {best[:3]}")
    t = s.get("type")
    if t is not None:
        types = t if isinstance(t, list) else [t]
        if not any(_TYPES[x](v) for x in types):
            errs.append(f"{where}: {type(v).__name__} {str(v)[:60]!r} is not {t}")
            return
    if "enum" in s and v not in s["enum"] and not (v is None and s.get("nullable")):
        errs.append(f"{where}: {v!r} not in {s['enum']}")
    if isinstance(v, dict):
        props = s.get("properties", {})
        for key in s.get("required", []):
            if key not in v:
                errs.append(f"{where}: missing required {key!r}")
        for key, val in v.items():
            if key in props:
                _check(val, props[key], f"{where}.{key}", errs)
            else:
                extra = s.get("additionalProperties", True)
                if extra is False:
                    errs.append(f"{where}: unexpected key {key!r}")
                elif isinstance(extra, dict):
                    _check(val, extra, f"{where}.{key}", errs)
    if isinstance(v, list) and "items" in s:
        for i, item in enumerate(v):
            _check(item, s["items"], f"{where}[{i}]", errs)
