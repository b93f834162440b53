"""The data: Fashion-MNIST and your own sources as one in-memory uint8 pool, splits, batches,
augmentation, the corruption suite and user images."""
