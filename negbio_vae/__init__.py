__version__ = "0.1.0"

# Importing the package registers every model of the book by name (chapter 04 §6a): the COM-Poisson VAE of
# chapter 04a registers itself as "com_poisson" when its module is imported.
from . import com_poisson as _com_poisson  # noqa: F401  (registration only)
