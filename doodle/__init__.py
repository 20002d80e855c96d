"""Quick, Draw! doodle recognition pipeline."""
