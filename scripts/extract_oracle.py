"""Extract the schemas of the official contract files into the test oracle.

The official OpenAPI files are the oracle for field names and shapes. Tests must run from a fresh
clone that does not have them, so this script keeps only their machine-readable part: the
``components`` schemas and parameters, with every description, example and title removed.

    python scripts/extract_oracle.py ../shared/reference/stellantis
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

PROSE = {"description", "example", "examples", "title", "summary", "externalDocs", "x-tagGroups"}
FILES = {
    "api-b2b.yaml": "b2b-api.json",
    "api-b2b-webhook-template-v3.yaml": "b2b-webhook.json",
    "api-b2c.yaml": "b2c-api.json",
    "api-b2c-webhook-template.yaml": "b2c-webhook.json",
}


class _Yaml12Loader(yaml.SafeLoader):
    """YAML 1.2 booleans only: a field named ``on`` (RemoteLights) must stay the string "on"."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def strip(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: strip(v) for k, v in node.items() if k not in PROSE}
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


def extract(source: Path) -> dict[str, Any]:
    text = source.read_text(encoding="utf-8").replace("\t", " ")
    spec = yaml.load(text, Loader=_Yaml12Loader)  # noqa: S506 - a SafeLoader subclass
    components = spec.get("components", {})
    return {
        "version": spec.get("info", {}).get("version"),
        "components": {
            "schemas": strip(components.get("schemas", {})),
            "parameters": strip(components.get("parameters", {})),
        },
    }


def main(folder: str) -> None:
    target = Path(__file__).resolve().parent.parent / "tests" / "oracle"
    for name, out in FILES.items():
        data = extract(Path(folder) / name)
        (target / out).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        print(f"{name} -> tests/oracle/{out} ({len(data['components']['schemas'])} schemas)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/reference/stellantis")
