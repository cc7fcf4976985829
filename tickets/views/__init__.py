"""Portal views, one module per request type: parse the form, call one service, render."""
