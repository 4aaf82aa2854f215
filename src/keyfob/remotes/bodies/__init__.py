"""The typed models of each remote action, one module per family of actions."""
