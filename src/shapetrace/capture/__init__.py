"""Capture: the recorder (a TorchFunctionMode plus module hooks) and the records it produces."""
