"""PyDataset classes made on first use, so that a module can be imported without Keras."""


def lazy_py_dataset(namespace, name, base):
    """`base` mixed with ``keras.utils.PyDataset`` as `name`, stored in `namespace`.

    Importing Keras takes seconds that reading data does not need; a module's
    ``__getattr__`` calls this for the name of its PyDataset class.
    """
    import keras

    cls = type(
        name,
        (base, keras.utils.PyDataset),
        {"__module__": namespace["__name__"], "__qualname__": name, "__doc__": base.__doc__},
    )
    namespace[name] = cls  # later look-ups (and pickle) find it directly
    return cls
