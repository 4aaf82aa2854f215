"""The official contract's schemas as a test oracle (see scripts/extract_oracle.py)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from openapi_schema_validator import OAS30Validator

ORACLE = Path(__file__).parent / "oracle"


@cache
def document(name: str) -> dict[str, Any]:
    """``name`` is one of b2b-api, b2b-webhook, b2c-api, b2c-webhook."""
    data: dict[str, Any] = json.loads((ORACLE / f"{name}.json").read_text())
    return data


def errors(name: str, schema: str, instance: Any) -> list[str]:
    """Every way ``instance`` breaks ``components.schemas[schema]`` of the oracle ``name``."""
    root = {"components": document(name)["components"], "$ref": f"#/components/schemas/{schema}"}
    validator = OAS30Validator(root)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(instance)
    ]


def assert_conforms(name: str, schema: str, instance: Any) -> None:
    problems = errors(name, schema, instance)
    assert not problems, f"{schema} does not conform to {name}: {problems}"
