from securedrop_wm.cli import main

main()
