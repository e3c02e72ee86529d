"""Class conditioning for the image GANs: a label embedding for the
generators and the projection discriminator head.

Generator (label concatenated to the latent; Mirza & Osindero, "Conditional
Generative Adversarial Nets", 2014, with a learned embedding instead of a
one-hot code)::

    G(z, y) = G'(concat(z, E_G[y]))    E_G in R^{num_classes x z_dim}, N(0, 1) init

Projection discriminator (Miyato & Koyama, "cGANs with Projection
Discriminator", ICLR 2018, eq. 3 and Fig. 14)::

    D(x, y) = psi(phi(x)) + <E[y], phi(x)>

``phi(x)`` are the features that enter D's last linear layer ``psi`` (the
flattened last conv block of DCGAN / the standard CNN, the globally
sum-pooled features of the ResNet), ``E in R^{num_classes x dim(phi)}`` a
class embedding (Glorot-uniform init, as ``initialW`` of the authors' Chainer
``SNEmbedID``). When D is spectrally normalised, so is ``E`` (its largest
singular value over the ``[num_classes, dim]`` matrix, the authors'
``SNEmbedID``); its power-iteration vector lives in the same
``spectral_stats`` collection and advances only when D is applied with
``update_stats=True``, like D's other layers.

Both helpers must be called inside a compact ``__call__`` (they create
submodules named ``name``). With ``num_classes == 0`` nothing is created and
the module is the unconditional one, unchanged.

Mixed precision (``config.model.compute_dtype``): the embeddings are
parameter lookups, not matmuls, and stay float32. ``E_G[y]`` joins the
float32 ``z`` before G's first dense layer casts both; in D, the float32
``E[y]`` times the low-precision ``phi`` promotes to float32, so the
projection term is summed in float32 and added to the float32 logit.
"""

from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_stability.models import inits

G_EMBED_INIT = inits.normal_init(1.0)   # the scale of z ~ N(0, I)
D_EMBED_INIT = inits.glorot_uniform(1.0)


def check_labels(labels, *, num_classes: int, who: str) -> None:
  """Raises ValueError unless ``labels`` is given exactly when conditional."""
  if num_classes and labels is None:
    raise ValueError(f'config.model.num_classes: {who} is class-conditional '
                     f'(num_classes={num_classes}) and needs labels=')
  if not num_classes and labels is not None:
    raise ValueError(f'config.model.num_classes: {who} is unconditional '
                     '(num_classes=0) but was given labels=')


def generator_input(z: jax.Array, labels, *, num_classes: int,
                    name: str = 'class_embed') -> jax.Array:
  """``concat(z, E_G[y])`` (``[B, 2 z_dim]``), or ``z`` when unconditional."""
  check_labels(labels, num_classes=num_classes, who='the generator')
  if not num_classes:
    return z
  e = nn.Embed(num_classes, z.shape[-1], embedding_init=G_EMBED_INIT,
               name=name)(jnp.asarray(labels, jnp.int32))
  return jnp.concatenate([z, e.astype(z.dtype)], axis=-1)


def projection(phi: jax.Array, labels: jax.Array, *, num_classes: int,
               wrap: Callable[[nn.Module], Callable], name: str = 'embed'
               ) -> jax.Array:
  """The projection term ``<E[y], phi(x)>``, shape ``[B]``.

  Args:
    phi: ``[B, dim]`` features entering D's last linear layer.
    labels: int ``[B]`` classes in ``[0, num_classes)``.
    num_classes: rows of ``E``.
    wrap: D's layer wrapper (spectral norm when D has it, with D's
      ``update_stats``), applied to the embedding layer.
    name: the embedding's parameter name.
  """
  embed = nn.Embed(num_classes, phi.shape[-1], embedding_init=D_EMBED_INIT,
                   name=name)
  e = wrap(embed)(jnp.asarray(labels, jnp.int32))
  return jnp.sum(e * phi, axis=-1)


def project_logits(psi_phi: jax.Array, phi: jax.Array, labels, *,
                   num_classes: int, wrap, module: nn.Module) -> jax.Array:
  """``psi(phi(x)) + <E[y], phi(x)>`` for a conditional D, else ``psi_phi``.

  ``psi_phi`` is D's unconditional logit ``[B]``. For conditional models
  ``phi`` is also sown as ``intermediates/phi`` of ``module`` (visible with
  ``mutable=['intermediates']``).
  """
  check_labels(labels, num_classes=num_classes, who='the discriminator')
  if not num_classes:
    return psi_phi
  module.sow('intermediates', 'phi', phi)
  return psi_phi + projection(phi, labels, num_classes=num_classes, wrap=wrap)
