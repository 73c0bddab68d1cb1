__version__ = "0.1.0"

# Importing the package registers everything the book defines by name: the closed-form KLs with
# torch.distributions.kl_divergence (chapters 03 and 04a), every model with the model registry (chapter 04 §6a;
# the COM-Poisson VAE of chapter 04a registers itself as "com_poisson" when its module is imported) and the Triton
# window kernel with the window-kernel registry of chapter 01 (chapter 01a; Triton itself is imported on first use).
from . import kl as _kl, com_poisson as _com_poisson, triton_window as _triton_window  # noqa: F401  (registration only)
