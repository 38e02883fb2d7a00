from govpulse.cli import main

main()
