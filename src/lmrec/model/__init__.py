"""The LightningModule and the components it wires: item towers, user towers, heads, and the builder."""
