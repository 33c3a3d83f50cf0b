"""mcdash: a self-hosted control plane for Minecraft Java servers."""
