// mosrun: run a command as a migratable process, or recover one (mosrun.h).
#include "mosix/tools/mosrun.h"

int main(int argc, char** argv) { return mosix::tools::run_mosrun(mosix::tools::parse_mosrun_cli(argc, argv)); }
