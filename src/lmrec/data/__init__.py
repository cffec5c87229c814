"""Files -> validated tables -> processed, split, cached interactions -> the batches a task asks for."""
