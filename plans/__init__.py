"""Series plans shipped with labctl (``labctl demo`` runs ``demo.yaml``)."""
