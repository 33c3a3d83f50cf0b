"""`mcdash import-v1`: a V1 installation moved into mcdash (a composition-root tool, like the
CLI, reaching every context through the container that bootstrap() builds)."""
