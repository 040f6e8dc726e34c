print("hello from demo")
