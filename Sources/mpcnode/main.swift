print("mpcnode")
