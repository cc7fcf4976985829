"""Staff queue views: parse the form, call one service, render."""
