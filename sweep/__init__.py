"""sweep layer (see ../shared/DESIGN.md); built by later issues."""
