import CustosScan
print("stub")
