"""The HTTP face: the contract's routes, admin routes, error rendering, OpenAPI."""
