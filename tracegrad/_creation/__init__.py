"""Tensor creation (``tensor``, ``zeros``, ``arange``, ``randn`` ...) with PyTorch's signatures,
dtype inference and argument checks, and the random number generators.

    checks      argument checks with PyTorch's errors, shared by the others
    from_data   tensor(), as_tensor(), asarray(), from_numpy()
    factories   zeros, ones, empty, full, arange, linspace, eye, the non-random *_like
    generator   Generator, default_generator, manual_seed and the other seed functions
    avx_mathfun PyTorch's C float steps in numpy: fused multiply-add, AVX2 log and sincos
    kernels     PyTorch's CPU random kernels on a Generator, returning numpy arrays
    random      rand, randn, randint, randperm, normal, bernoulli, multinomial, random *_like
    methods     Tensor.uniform_, normal_, random_, bernoulli_, exponential_, multinomial, ...
"""
from .factories import (arange, empty, empty_like, eye, full, full_like, linspace, ones,
                        ones_like, zeros, zeros_like)
from .from_data import as_tensor, asarray, from_numpy, tensor
from .generator import (Generator, default_generator, get_rng_state, initial_seed, manual_seed,
                        seed, set_rng_state)
from .random import (bernoulli, multinomial, normal, rand, rand_like, randint, randint_like, randn,
                     randn_like, randperm)
from . import methods  # noqa: F401,E402  (installs Tensor.uniform_, normal_, ...)

__all__ = ["tensor", "as_tensor", "asarray", "from_numpy", "zeros", "ones", "empty", "full",
           "arange", "linspace", "eye", "zeros_like", "ones_like", "empty_like", "full_like",
           "rand_like", "randn_like", "randint_like", "randn", "rand", "randint", "randperm",
           "normal", "bernoulli", "multinomial", "Generator", "default_generator", "manual_seed",
           "seed", "initial_seed", "get_rng_state", "set_rng_state"]
