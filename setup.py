"""Installable package: `pip install -e .` (library + experiments), `[test]` for the tests."""
import setuptools

setuptools.setup(
    name='gan_stability',
    version='0.2.0.dev0',
    description='Pure-functional JAX/Flax library for GAN training stability research.',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    packages=setuptools.find_packages(include=['gan_stability', 'gan_stability.*',
                                               'experiments', 'experiments.*']),
    package_data={'gan_stability': ['assets/*.npz', 'assets/*.json',
                                    'assets/fid_stats/*.npz',
                                    'assets/fid_stats/*.md',
                                    'assets/generators/*.md',
                                    'assets/generators/*/*.json',
                                    'assets/generators/*/*.npz']},
    include_package_data=True,
    python_requires='>=3.10',
    install_requires=[
        'jax>=0.7.0',
        'flax>=0.11.0',
        'optax>=0.2.5',
        'orbax-checkpoint>=0.11.0',
        'ml-collections>=1.0.0',
        'tensorflow-datasets>=4.9.9',
        'importlib_resources>=6.0',  # needed by tensorflow-datasets, not declared by it
        'absl-py>=2.1.0',
        'numpy>=1.26',
        'matplotlib>=3.8',
        'pillow>=10.0',  # image folders (gan_stability.data.folder)
        'tensorboardX>=2.6.2',  # TensorBoard event files without TensorFlow
        'filelock>=3.12',  # locks JAX's bounded compilation cache (experiments/entry.py)
    ],
    extras_require={
        # scikit-image: the independent SSIM/PSNR reference in the tests;
        # pytest-xdist: the README's test command runs two test processes.
        'test': ['pytest>=8.0', 'pytest-timeout>=2.3', 'pytest-xdist>=3.5',
                 'scikit-image>=0.22'],
    },
)
