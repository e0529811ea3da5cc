"""dg components (``dg list components``, ``dg scaffold defs``), one folder each."""
