"""Views of a trace: the rich table and the JSON document."""
