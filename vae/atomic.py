"""Atomic file replacement: a file is either the old one or the new one, never half of one.

Every file this package writes that holds hours of work (weights, whole
models, training checkpoints) goes through `atomic_write`: the new content is
written beside the target under a temporary name, flushed to disk, and renamed
over the target in one step. A crash, a full disk, Ctrl-C or `kill -9` at any
moment leaves the previous file intact (plus, after a hard kill, a hidden
`.<name>.*.partial<suffix>` file that can be deleted).
"""

import os
import tempfile

__all__ = ["atomic_write"]


def _fsync_directory(directory):
    # Makes the rename itself durable; not every platform can open a directory.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _mode_for(path):
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)  # reading the umask means setting it
        os.umask(umask)
        return 0o666 & ~umask


def atomic_write(path, write, suffix=""):
    """Writes a file through `write(temporary_path)`, then renames it over `path`.

    Args:
        path: the destination. Its folder must exist.
        write: a function that writes the whole new file to the path it is
            given, e.g. `model.save_weights`.
        suffix: ending of the temporary file's name, for writers that choose
            the format by suffix (Keras wants `.weights.h5` or `.keras`).

    Returns:
        The absolute path written.

    Raises:
        Whatever `write` raises, or `OSError`; the destination is then
        unchanged and the temporary file removed.

    Example:

    >>> atomic_write("vae.weights.h5", vae.save_weights, suffix=".weights.h5")
    """
    path = os.path.abspath(os.fspath(path))
    directory = os.path.dirname(path)
    # Beside the target, so that the rename stays within one file system.
    fd, temporary = tempfile.mkstemp(
        prefix=f".{os.path.basename(path)}.", suffix=f".partial{suffix}", dir=directory
    )
    os.close(fd)
    try:
        write(temporary)
        # mkstemp makes the file private (0600); give it the mode the target
        # has, or that a new file would get, so a save changes no permissions.
        os.chmod(temporary, _mode_for(path))
        with open(temporary, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    _fsync_directory(directory)
    return path
