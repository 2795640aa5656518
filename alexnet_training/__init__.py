"""Training without a framework: recipes, data sets, image decoding, augmentation, run folders and
precise BatchNorm statistics, in numpy (and PIL for images).

Both frameworks' training loops (``alexnet_torch.training``, ``alexnet_keras.training``) read this
package, which is why the same recipe gives them the same batches. It imports numpy and PIL at
most: never torch, never tensorflow or keras, and nothing above it (no framework, no command).
"""
