// migrate: move or checkpoint a MOSIX process (mosrun.h).
#include "mosix/tools/mosrun.h"

int main(int argc, char** argv) { return mosix::tools::run_migrate(mosix::tools::parse_migrate_cli(argc, argv)); }
