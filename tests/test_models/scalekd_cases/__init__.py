"""Registry cases of the teacher adapters, student backbones and the distiller."""
