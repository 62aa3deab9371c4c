"""Training: the segmenter, the cycle GAN, textures, fine-tuning, and the checkpoint edits that tune them.

Every loop is a generator of :class:`~napari_nanogan.training.loop.TrainProgress`
records that takes ``should_stop`` and keeps its last checkpoint when stopped.
"""
