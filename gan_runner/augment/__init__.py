"""What D sees: augmentations applied to real and fake images alike (ADA, DiffAugment)."""
