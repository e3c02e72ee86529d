"""A DCGAN on one's own images: a folder of image files (or an ``.npz``).

``python -m experiments.train --config=experiments/configs/folder.py:wgan_gp
--config.data.dir=MY_IMAGES --workdir=DIR`` trains on every PNG / JPEG / BMP
/ GIF / WebP file under ``MY_IMAGES`` (recursively), each resized so that
its shorter side is 32 and centre-cropped to 32 x 32 (``data.image_size``;
0 keeps the files' own size, which must then be one size, 28 or a power of
two >= 16 for the DCGAN). The decoded images are cached on disk
(``data.cache_dir``) and memory-mapped, so the files are decoded once and a
folder larger than memory trains. ``--config.data.source=npz
--config.data.image_size=0`` reads an ``.npz`` file instead (images under
``x``). Details: docs/images.md "Data" and ``gan_stability/data/folder.py``.

Variants: vanilla, nonsaturating, wgan_gp, sngan, hinge_r1, smoke (recipes
in ``recipes.py``). A class-conditional model takes its classes from the
first-level subfolders of ``data.dir``, whose number is known only when the
folder is read: use a plain variant with ``--config.model.num_classes=K``
(K = the number of class subfolders; checked when the folder is read). The
``<variant>_cond`` names of the other image configs are refused here with
that advice. No evaluation metrics by default (the MNIST-classifier ones do
not apply; ``--config.eval.metrics=fid,kid
--config.eval.inception_path=...`` computes FID / KID against the folder).
"""

from experiments.configs import images

IMAGE_SIZE = 32


def get_config(variant: str = 'wgan_gp'):
  recipe, conditional = images.split_variant(variant)
  if conditional:
    raise ValueError(
        f'config variant: {variant!r}: the classes of a folder are known '
        f'only when it is read; use {recipe!r} with '
        '--config.model.num_classes=K (K = the class subfolders of '
        'data.dir)')
  c = images.base(variant=variant, dataset='custom', model='dcgan',
                  z_dim=100, g_width=64, d_width=64, source='folder')
  c.data.image_size = IMAGE_SIZE
  c.eval.metrics = ''
  if recipe == 'smoke':
    c.data.image_size = 16
  return c
