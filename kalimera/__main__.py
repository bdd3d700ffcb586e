from kalimera.cli import main

main()
