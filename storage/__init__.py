"""Storage ports (JobStore, ArtifactStore), their AWS adapters, settings and the composition root."""
