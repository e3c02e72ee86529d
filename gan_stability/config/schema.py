"""The config schema: every field of a training config, declared once.

A field (:class:`Field`) has its default, its type and check (or allowed
values, taken from the registry that defines them: losses, penalties,
models, optimisers, datasets, metrics, kernel forms), whether a resumed run
may change it, and the release it appeared in with the value that
reproduces runs written before (``legacy``; :func:`gan_stability.config.upgrade`
fills it into an old ``config.json``).

Fields are grouped by what selects them: every run (:data:`RUN`), the GAN
family (:data:`GAN`, selected by the absence of ``config.family``) or the VAE
(:data:`VAE`, ``family='vae'``), the model's data kind (:data:`MLP_MODEL`
for the 2-D MLPs, :data:`IMAGE_MODEL` for the conv nets) and the dataset's
kind (:data:`MIXTURE_DATA`, or :data:`IMAGE_DATA` with :data:`EVAL`).
:func:`fields_for` assembles the schema of one config, :func:`defaults`
builds a config with every default, and experiment configs
(``experiments/configs/``) override values: they never declare fields.
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any, Callable, Sequence

import ml_collections

from gan_stability import data as data_lib
from gan_stability import augment, elbo, game, losses, models, optimizers
from gan_stability import penalties
from gan_stability.eval import registry as metric_registry
from gan_stability.metrics import inception
from gan_stability.kernels import compile_options
from gan_stability import kernels
from gan_stability.models import layers, norms

# The families of runs (``config.family``; absent means 'gan'). The
# training tasks (gan_stability/train/tasks.py) are registered under these.
FAMILIES = ('gan', 'vae')
DIVERGENCE_POLICIES = ('stop', 'rollback')  # config.on_divergence
FIRST_RELEASE = '0.1.0'
_MISSING = object()


@dataclasses.dataclass(frozen=True)
class Field:
  """One config field.

  Attributes:
    default: the value :func:`defaults` gives it.
    kind: the Python type(s) it must have (``numbers.Real`` accepts ints).
    check: an extra predicate, described by ``expect`` in errors.
    expect: what ``check`` requires, e.g. ``'> 0'``.
    choices: the allowed values: a sequence, or a callable of the config
      returning them (read at validation time from the registry that
      defines them).
    resumable: whether a resumed run may change the value (a callable of
      the config where that depends on other fields).
    since: the release the field appeared in.
    legacy: the value that reproduces runs whose ``config.json`` predates
      the field (fields added during 0.1.0's development have one too).
    doc: one line for the reader.
    vmappable: the field may be an axis of a sweep run as one vmapped
      program (``sw.axis(field, values, in_one_program=True)``,
      docs/sweeps.md): a float that changes no shape of the state or the
      batch, and that the train step uses as a number; it may branch on
      the value only on whether it is > 0 (a group of runs takes the branch
      if any member does, and a member at 0 then computes what its own run
      computes). :func:`gan_stability.train.gan.make_train_step`'s
      ``hparams`` takes exactly these fields. A callable of the config
      where that depends on other fields (Adam's betas: only with
      ``optimizer.name='adam'``; SGD's momentum decides the optimiser
      state's structure). :func:`vmappable_fields` evaluates it.
  """
  default: Any
  kind: type | tuple[type, ...]
  check: Callable[[Any], bool] | None = None
  expect: str = ''
  choices: Sequence[Any] | Callable[..., Sequence[Any]] | None = None
  resumable: bool | Callable[[Any], bool] = False
  since: str = FIRST_RELEASE
  legacy: Any = _MISSING
  doc: str = ''
  vmappable: bool | Callable[[Any], bool] = False

  @property
  def has_legacy(self) -> bool:
    return self.legacy is not _MISSING


def _int(default, check=None, expect='', **kw) -> Field:
  return Field(default, int, check, expect, **kw)


def _float(default, check=None, expect='', **kw) -> Field:
  return Field(float(default), numbers.Real, check, expect, **kw)


def _str(default, choices=None, **kw) -> Field:
  return Field(default, str, choices=choices, **kw)


def _bool(default, **kw) -> Field:
  return Field(default, bool, **kw)


_POS = (lambda v: v > 0, '> 0')
_NONNEG = (lambda v: v >= 0, '>= 0')
_ONE_UP = (lambda v: v >= 1, '>= 1')
_UNIT = (lambda v: 0 <= v < 1, 'in [0, 1)')


def _ynn_ok(v) -> bool:
  try:
    compile_options.parse(v)
  except ValueError:
    return False
  return True


def _dataset_ok(v) -> bool:
  return data_lib.dataset_info(v) is not None


def family(config) -> str:
  """``config.family``, ``'gan'`` when absent."""
  return config.get('family', 'gan')


def _model_names(config) -> list[str]:
  # The VAE's networks are the DCGAN's (gan_stability/models/vae.py).
  return ['dcgan'] if family(config) == 'vae' else list(models.MODELS)


def _num_steps_resumable(config) -> bool:
  # A decaying learning-rate schedule depends on the run's length.
  return config.optimizer.lr_schedule == 'constant'


def _is_adam(config) -> bool:
  # Adam's betas are numbers in its update; SGD's momentum (b1) decides
  # whether its state has a trace, and RMSProp ignores both.
  return config['optimizer']['name'] == 'adam'


_G_NORMS = ('batch', 'none')
AUGMENTS = ('none', 'diffaugment', 'ada')  # config.augment
CONSISTENCY = ('none', 'cr', 'bcr', 'zcr')  # config.consistency


def _policy_ok(v) -> bool:
  try:
    names = augment.parse_policy(v)
  except ValueError:
    return False
  return bool(names)


def _ada_transforms_ok(v) -> bool:
  try:
    return bool(augment.parse_ada_transforms(v))
  except ValueError:
    return False

# Fields of every run.
RUN: dict[str, Field] = {
    'variant': _str('', doc='the experiment config variant it came from'),
    'seed': _int(0, *_NONNEG, doc='every PRNG key derives from (seed, step)'),
    'dataset': Field('ring', str, _dataset_ok, data_lib.ALLOWED,
                     doc='the data (gan_stability.data.DATASETS)'),
    'model.name': _str('mlp', _model_names,
                       doc='the architecture (gan_stability.models.MODELS)'),
    'model.z_dim': _int(100, *_POS, doc='latent dimension'),
    'batch_size': _int(64, *_POS, doc='global batch, split over all devices'),
    'num_steps': _int(100_000, *_POS, resumable=_num_steps_resumable,
                      doc='generator updates (VAE: updates)'),
    'steps_per_dispatch': _int(1, *_POS, resumable=True,
                               doc='train steps per compiled call'),
    'log_every': _int(100, *_POS, resumable=True,
                      doc='steps between metrics.jsonl records'),
    'eval_every': _int(1000, *_POS, resumable=True,
                       doc='steps between evaluations (and the last step)'),
    'eval_samples': _int(64, *_POS, resumable=True,
                         doc='the fixed latent batch drawn at each eval'),
    'checkpoint_every': _int(1000, *_POS, resumable=True,
                             doc='steps between checkpoints (and the last)'),
    'keep_checkpoints': _int(2, *_ONE_UP, resumable=True,
                             doc='checkpoints kept'),
    'num_devices': _int(0, *_NONNEG, resumable=True,
                        doc='devices the batch is split over; 0: all'),
    'write_tensorboard': _bool(True, resumable=True,
                               doc='TensorBoard event files'),
    'write_samples': _bool(True, resumable=True,
                           doc='samples/step_*.png at evaluations'),
    'cpu_ynn_fusions': Field(
        'auto', str, _ynn_ok,
        compile_options.ALLOWED + str(list(compile_options.KINDS)),
        resumable=True, legacy='xla',
        doc='which XLA:CPU op kinds run in YNNPACK '
        '(gan_stability.kernels.compile_options)'),
    'optimizer.name': _str('adam', lambda c: list(optimizers.OPTIMIZERS),
                           doc='gan_stability.optimizers.OPTIMIZERS'),
    'optimizer.b1': _float(0.5, *_UNIT, doc="Adam's beta1 (SGD: momentum)",
                           vmappable=_is_adam),
    'optimizer.b2': _float(0.999, *_UNIT, doc="Adam's beta2",
                           vmappable=_is_adam),
    'optimizer.lr_schedule': _str('constant',
                                  lambda c: list(optimizers.SCHEDULES),
                                  doc='linear: decay to 0 at num_steps'),
}

# Fields of the GANs.
GAN: dict[str, Field] = {
    'loss': _str('nonsaturating', lambda c: list(losses.LOSSES),
                 doc='gan_stability.losses.LOSSES'),
    'penalty': _str('none', lambda c: penalties.names(),
                    doc='gan_stability.penalties.PENALTIES'),
    'penalty_weight': _float(0.0, *_NONNEG,
                             doc='multiplies the unweighted penalty (R1: '
                             'gamma / 2)', vmappable=True),
    'gp_target': _float(1.0, *_NONNEG, doc="the gradient penalty's target "
                        'norm', vmappable=True),
    'n_critic': _int(1, *_ONE_UP, doc='D updates per G update, each on its '
                     'own real batch'),
    'd_clip': _float(0.0, *_NONNEG,
                     doc='WGAN weight clipping bound; 0 disables',
                     vmappable=True),
    'optimizer.g_lr': _float(2e-4, *_POS, doc="G's learning rate",
                             vmappable=True),
    'optimizer.d_lr': _float(2e-4, *_POS, doc="D's learning rate (TTUR)",
                             vmappable=True),
    'ema_decay': _float(0.0, *_UNIT,
                        doc='EMA of G weights for evaluation; 0 disables',
                        vmappable=True),
    'ema_start': _int(0, *_NONNEG, doc='the step the EMA starts averaging'),
    'loop_impl': _str('auto', lambda c: list(kernels.LOOP_IMPLS),
                      resumable=True,
                      doc='how the n_critic and dispatch loops compile'),
    'alarm_grad_factor': _float(100.0, *_NONNEG, resumable=True,
                                doc='alarm: grad norm > factor x recent '
                                'median; 0 disables'),
    'alarm_collapse_ratio': _float(0.1, *_UNIT, resumable=True,
                                   doc='alarm: diversity < ratio x its '
                                   'maximum; 0 disables'),
    'log_sigmas': _bool(True, resumable=True,
                        doc='per-layer spectral norms of D at log steps'),
    'on_divergence': _str('stop', DIVERGENCE_POLICIES, resumable=True,
                          doc='non-finite loss: stop, or roll back to the '
                          'last checkpoint'),
    'max_rollbacks': _int(3, *_NONNEG, resumable=True,
                          doc='rollbacks before stopping'),
    # Stabilisers (gan_stability/augment.py, gan_stability/regularizers.py),
    # off by default and for runs written before they existed.
    'augment': _str('none', AUGMENTS, since='0.2.0', legacy='none',
                    doc='DiffAugment or ADA of every D input, real and fake '
                    "(G's gradient flows through it)"),
    'ada_transforms': Field(augment.ADA_DEFAULT_TRANSFORMS, str,
                            _ada_transforms_ok, 'comma-separated: ' + ', '.join(
                                augment.ADA_TRANSFORMS),
                            since='0.2.0',
                            legacy=augment.ADA_DEFAULT_TRANSFORMS,
                            doc="augment='ada': the transforms, in order"),
    'ada_p': _float(0.0, *_UNIT, since='0.2.0', legacy=0.0,
                    doc="augment='ada': the initial augmentation probability"),
    'ada_target': _float(0.6, *_UNIT, since='0.2.0', legacy=0.6,
                         doc="augment='ada': the target of r_t = "
                         'E[sign(D(x_real))]'),
    'ada_interval': _int(4, *_ONE_UP, since='0.2.0', legacy=4,
                         doc="augment='ada': D updates between adjustments "
                         'of p'),
    'ada_kimg': _float(500.0, *_POS, since='0.2.0', legacy=500.0,
                       doc="augment='ada': thousands of real images for p to "
                       'go from 0 to 1'),
    'lecam_weight': _float(0.0, *_NONNEG, since='0.2.0', legacy=0.0,
                           doc="LeCam regularisation's weight in D's loss; "
                           '0 disables', vmappable=True),
    'lecam_decay': _float(0.99, *_UNIT, since='0.2.0', legacy=0.99,
                          doc="the decay of LeCam's EMA anchors",
                          vmappable=True),
    'game': _str('alternating', lambda c: list(game.JOINT_METHODS),
                 since='0.2.0', legacy='alternating',
                 doc='how the players update (gan_stability.game.'
                 'joint_update); all but alternating need n_critic=1'),
    'consensus_gamma': _float(10.0, *_NONNEG, since='0.2.0', legacy=10.0,
                              doc="game='consensus': the weight gamma",
                              vmappable=True),
    'augment_policy': Field('color,translation,cutout', str, _policy_ok,
                            'comma-separated: ' + ', '.join(
                                augment.DIFFAUGMENT_POLICIES),
                            since='0.2.0', legacy='color,translation,cutout',
                            doc="DiffAugment's transforms (augment, and "
                            "consistency's T)"),
    'instance_noise': _float(0.0, *_NONNEG, since='0.2.0', legacy=0.0,
                             doc='sigma of the Gaussian noise added to every '
                             'D input; 0 disables', vmappable=True),
    'instance_noise_steps': _int(0, *_NONNEG, since='0.2.0', legacy=0,
                                 doc='steps over which sigma anneals linearly '
                                 'to 0; 0: constant'),
    'label_smoothing': _float(0.0, *_UNIT, since='0.2.0', legacy=0.0,
                              doc="one-sided: D's real targets are 1 - s "
                              '(the sigmoid losses); 0 disables',
                              vmappable=True),
    'penalty_every': _int(1, *_ONE_UP, since='0.2.0', legacy=1,
                          doc='lazy regularisation: the penalty on every '
                          'k-th D update, weighted x k'),
    'dragan_c': _float(0.5, *_POS, since='0.2.0', legacy=0.5,
                       doc="penalty='dragan': the perturbation's scale in "
                       "units of the batch's std", vmappable=True),
    'consistency': _str('none', CONSISTENCY, since='0.2.0', legacy='none',
                        doc='consistency regularisation: cr (real), bcr '
                        '(real and fake), zcr (latent)'),
    'cr_weight_real': _float(10.0, *_NONNEG, since='0.2.0', legacy=10.0,
                             doc='cr / bcr: weight of the real term',
                             vmappable=True),
    'cr_weight_fake': _float(10.0, *_NONNEG, since='0.2.0', legacy=10.0,
                             doc='bcr: weight of the fake term',
                             vmappable=True),
    'zcr_sigma': _float(0.03, *_POS, since='0.2.0', legacy=0.03,
                        doc='zcr: std of the latent perturbation',
                        vmappable=True),
    'zcr_weight_d': _float(5.0, *_NONNEG, since='0.2.0', legacy=5.0,
                           doc="zcr: weight of D's term", vmappable=True),
    'zcr_weight_g': _float(0.5, *_NONNEG, since='0.2.0', legacy=0.5,
                           doc="zcr: weight of G's term", vmappable=True),
    'model.spectral_norm': _bool(False, doc='spectral norm on every D layer'),
    'model.sn_steps': _int(1, *_ONE_UP, doc='power iterations per D update'),
    'model.packing': _int(1, *_ONE_UP, doc='PacGAN: samples D sees together'),
    'model.compute_dtype': _str('float32', tuple(layers.COMPUTE_DTYPES),
                                since='0.2.0', legacy='float32',
                                doc="the dtype of G's and D's matmuls and "
                                'convolutions; parameters, optimiser state, '
                                'losses and norm statistics stay float32 '
                                '(docs/mixed_precision.md)'),
}

# Model fields of the MLPs (2-D data).
MLP_MODEL: dict[str, Field] = {
    'model.g_hidden': _int(128, *_POS, doc="G's hidden units"),
    'model.g_layers': _int(3, *_NONNEG, doc="G's hidden layers"),
    'model.g_activation': _str('relu', lambda c: list(layers.ACTIVATIONS)),
    'model.d_hidden': _int(128, *_POS, doc="D's hidden units"),
    'model.d_layers': _int(3, *_NONNEG, doc="D's hidden layers"),
    'model.d_activation': _str('leaky_relu',
                               lambda c: list(layers.ACTIVATIONS)),
    'model.g_norm': _str('none', ('none', 'batch'), legacy='none',
                         doc='batch norm in G'),
    'model.d_maxout': _int(1, lambda v: v >= 1, '>= 1 (1: no maxout)',
                           legacy=1, doc='maxout pieces per D unit'),
}

# Model fields of the conv nets (GAN generator and discriminator).
IMAGE_MODEL: dict[str, Field] = {
    'model.g_width': _int(64, *_POS, doc="G's channel width"),
    'model.d_width': _int(64, *_POS, doc="D's channel width"),
    'model.g_norm': _str('batch', _G_NORMS, doc='normalisation in G'),
    'model.d_norm': _str('none', lambda c: list(norms.NORMS),
                         doc='normalisation in D'),
    'model.conv_impl': _str('auto', lambda c: list(kernels.IMPLS),
                            doc='convolution kernels (gan_stability.kernels)'),
    'model.num_classes': _int(0, *_NONNEG, legacy=0,
                              doc='0: unconditional; K: labels 0..K-1'),
}

# Fields of the VAE baseline (its networks are the DCGAN's).
VAE: dict[str, Field] = {
    'family': _str('vae', FAMILIES, doc='the kind of run (absent: gan)'),
    'model.g_width': IMAGE_MODEL['model.g_width'],
    'model.e_width': _int(64, *_POS, doc="the encoder's channel width"),
    'model.g_norm': IMAGE_MODEL['model.g_norm'],
    'model.conv_impl': IMAGE_MODEL['model.conv_impl'],
    'model.num_classes': IMAGE_MODEL['model.num_classes'],
    'vae.likelihood': _str('bernoulli', elbo.LIKELIHOODS,
                           doc="the decoder's likelihood"),
    'vae.sigma': _float(0.1, *_POS, doc='gaussian pixel std in [-1, 1] scale'),
    'vae.beta': _float(1.0, *_POS, doc='KL weight (1: the ELBO)'),
    'optimizer.lr': _float(1e-3, *_POS, doc='learning rate'),
}

# Data fields of the 2-D mixtures.
MIXTURE_DATA: dict[str, Field] = {
    'data.ring_modes': _int(8, lambda v: v >= 2, '>= 2'),
    'data.ring_radius': _float(1.0, *_POS),
    'data.ring_sigma': _float(0.01, *_POS),
    'data.grid_size': _int(5, lambda v: v >= 2, '>= 2',
                           doc='modes per side'),
    'data.grid_spacing': _float(2.0, *_POS),
    'data.grid_sigma': _float(0.05, *_POS),
}

# Data fields of the image datasets.
IMAGE_DATA: dict[str, Field] = {
    'data.source': _str('idx', data_lib.SOURCES,
                        doc='idx: IDX files in data.dir; tfds: '
                        "tfds.data_source; folder / npz: dataset 'custom', "
                        'image files under data.dir / an .npz file'),
    'data.dir': _str('', doc='IDX directory, TFDS data_dir, image folder or '
                     '.npz file'),
    'data.split': Field('train', str, bool, 'a split name'),
    'data.pad_to': _int(0, lambda v: v in (0, 32), '0 (none) or 32',
                        doc='pad 28x28 images to 32x32'),
    'data.stacked_num_examples': _int(128_000, *_POS,
                                      doc='size of the Stacked MNIST set'),
    'data.samples_per_row': _int(8, *_POS, doc='of the sample grid'),
    'data.download': _bool(False, doc='let TFDS download a missing set'),
    'data.num_examples': _int(0, *_NONNEG, since='0.2.0', legacy=0,
                              doc='train on the first N examples of '
                              'data.split (labels alike; every source); 0 = '
                              'all. The MNIST / Fashion-MNIST IDX files are '
                              'not in class order, so the first N are a '
                              "fixed random-like subset. Evaluation's real "
                              'side is never subset'),
    # data.source='folder' (gan_stability/data/folder.py).
    'data.image_size': _int(0, *_NONNEG, since='0.2.0', legacy=0,
                            doc="folder: 0 = the files' own (equal) size; S "
                            '= shorter side resized to S (bicubic), centre '
                            'S x S crop'),
    'data.skip_unreadable': _bool(False, since='0.2.0', legacy=False,
                                  doc='folder: skip files that cannot be '
                                  'decoded (one warning) instead of failing'),
    'data.cache_dir': _str('', resumable=True, since='0.2.0', legacy='',
                           doc='folder: where the decoded array is cached; '
                           "'' = $XDG_CACHE_HOME/gan_stability/folders"),
}

# Evaluation fields of the image datasets (gan_stability/eval).
EVAL: dict[str, Field] = {
    'eval.metrics': _str('', resumable=True,
                         doc='comma-separated names of '
                         'gan_stability.eval.registry.METRICS'),
    'eval.features': _str('classifier', metric_registry.SPACES,
                          resumable=True, doc='the space of pr / dc'),
    'eval.classifier_path': _str('', resumable=True,
                                 doc="'' = the packaged MNIST classifier"),
    'eval.inception_path': _str('', resumable=True,
                                doc='the FID Inception weights .npz'),
    'eval.num_real': _int(10_000, lambda v: v >= 2, '>= 2', resumable=True,
                          doc='real images of the FID statistics and pr / dc'),
    'eval.cache_dir': _str('', resumable=True,
                           doc="'' = <workdir>/eval_cache"),
    # The FID protocol (docs/metrics.md "Which FID?"); fixed for a run so
    # that its FID curve is one protocol.
    'eval.fid_resize': _str(inception.DEFAULT_RESIZE, inception.RESIZE_MODES,
                            since='0.2.0', legacy='bilinear',
                            doc='how images reach 299x299 for Inception '
                            'features: tf1 (TTUR / StyleGAN), clean '
                            '(clean-fid), bilinear (before 0.2.0)'),
    'eval.quantize': _bool(True, since='0.2.0', legacy=False,
                           doc='round samples to uint8 before any metric '
                           'features, as saved images are'),
    'eval.real_split': _str('', since='0.2.0', legacy='',
                            doc="the real side's split: '' = data.split "
                            '(e.g. test: FID against the test set)'),
}


def data_kind(dataset: str) -> str:
  """``'mixture'`` or ``'image'`` (``'mixture'`` for a value that is not a
  known dataset, whose error the schema reports)."""
  info = data_lib.dataset_info(dataset) if isinstance(dataset, str) else None
  return info.kind if info is not None else 'mixture'


def fields_for(*, family_name: str = 'gan', model: str = 'mlp',
               dataset: str = 'ring') -> dict[str, Field]:
  """The schema of a config of this family, model and dataset."""
  kind = data_kind(dataset)
  data = {**IMAGE_DATA, **EVAL} if kind == 'image' else MIXTURE_DATA
  if family_name == 'vae':
    return {**RUN, **VAE, **IMAGE_DATA, **EVAL}
  spec = models.MODELS.get(model)
  model_fields = IMAGE_MODEL if spec is not None and spec.data == 'image' else (
      MLP_MODEL)
  return {**RUN, **GAN, **model_fields, **data}


def value(config, name: str):
  """``config[name]`` of a GAN field, or its ``legacy`` value when the config
  predates the field (a config built or upgraded by this package always has
  it): the one place a reader of old configs takes that value from.

  Raises:
    KeyError: ``name`` is missing and the field has no legacy value.
  """
  if name in config:
    return config[name]
  legacy = GAN[name].legacy
  if legacy is _MISSING:
    raise KeyError(f'config.{name}: missing, and the field has no legacy '
                   'value')
  return legacy


def vmappable_fields(config) -> list[str]:
  """The fields of ``config``'s schema that may vary within one vmapped
  program (``Field.vmappable``, evaluated on ``config``)."""
  return [n for n, f in schema_for(config).items()
          if (f.vmappable(config) if callable(f.vmappable) else f.vmappable)]


def schema_for(config) -> dict[str, Field]:
  """The schema of ``config`` (a ConfigDict or a ``config.json`` dict)."""
  m = config.get('model', {})
  return fields_for(family_name=family(config),
                    model=m.get('name', 'mlp') if hasattr(m, 'get') else 'mlp',
                    dataset=config.get('dataset', 'ring'))


def defaults(*, family_name: str = 'gan', model: str = 'mlp',
             dataset: str = 'ring') -> ml_collections.ConfigDict:
  """A config with every field of its schema at its default (``model.name``
  and ``dataset`` set as given). Experiment configs start from this and
  override values."""
  out: dict = {}
  for name, f in fields_for(family_name=family_name, model=model,
                            dataset=dataset).items():
    *parents, leaf = name.split('.')
    node = out
    for p in parents:
      node = node.setdefault(p, {})
    node[leaf] = f.default
  out['model']['name'] = model
  out['dataset'] = dataset
  return ml_collections.ConfigDict(out)


def choices(f: Field, config) -> list | None:
  """The allowed values of ``f`` for ``config`` (None: any)."""
  if f.choices is None:
    return None
  if callable(f.choices):
    return list(f.choices(config))
  return list(f.choices)


def resumable(f: Field, config) -> bool:
  return f.resumable(config) if callable(f.resumable) else bool(f.resumable)


GROUPS = (('Every run', RUN), ('GANs', GAN), ('MLP models (2-D data)', MLP_MODEL),
          ('Conv models (images)', IMAGE_MODEL),
          ("The VAE baseline (`family='vae'`)", VAE),
          ('2-D mixture data', MIXTURE_DATA), ('Image data', IMAGE_DATA),
          ('Evaluation (image data)', EVAL))


def _allowed(f: Field, config) -> str:
  values = choices(f, config)
  if values is not None:
    return ', '.join(f'`{v}`' for v in values)
  if f.expect:
    return f.expect
  return getattr(f.kind, '__name__', 'number')


def markdown() -> str:
  """Every field of the schema as Markdown tables (``docs/config.md``:
  ``python -m gan_stability.config.schema``)."""
  gan = defaults(model='dcgan', dataset='mnist')
  vae = defaults(family_name='vae', model='dcgan', dataset='mnist')
  lines = ['# Config fields', '',
           'Generated from `gan_stability/config/schema.py` by '
           '`python -m gan_stability.config.schema > docs/config.md` '
           '(`tests/test_structure.py` checks that it is current). Every '
           'field is set with `--config.<field>=<value>` and can be a sweep '
           "axis. *Resumable*: a resumed run may change it. *Legacy*: the "
           'value a `config.json` written before the field existed is read '
           'with.', '']
  for title, group in GROUPS:
    lines += [f'## {title}', '',
              '| field | default | allowed | resumable | legacy | what |',
              '|---|---|---|---|---|---|']
    example = vae if group is VAE else gan
    for name, f in group.items():
      res = f.resumable if not callable(f.resumable) else (
          'with a constant learning rate')
      res = 'yes' if res is True else ('' if res is False else res)
      legacy = f'`{f.legacy!r}`' if f.has_legacy else ''
      default = 'the config' if name in ('model.name', 'dataset') else (
          f'`{f.default!r}`')
      lines.append(f'| `{name}` | {default} | {_allowed(f, example)} | {res} '
                   f'| {legacy} | {f.doc} |')
    lines.append('')
  return '\n'.join(lines)


if __name__ == '__main__':
  print(markdown(), end='')
