from flowfi import main

main()
