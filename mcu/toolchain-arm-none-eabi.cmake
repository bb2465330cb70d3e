# mcu/toolchain-arm-none-eabi.cmake - cross-compiling mcu/ for a bare-metal
# Cortex-M with Debian's gcc-arm-none-eabi + libnewlib-arm-none-eabi
# (scripts/install-deps.sh installs both).
#
#   cmake -S mcu -B build-mcu -DCMAKE_TOOLCHAIN_FILE=mcu/toolchain-arm-none-eabi.cmake \
#         [-DCL_MCU_CPU=cortex-m4|cortex-m0plus] [-DCL_MCU_PROFILE=default|small]
#
# The CPU flags live here (CMAKE_C_FLAGS_INIT) so that CMake's compiler checks
# already use them; -Os and the section flags are in mcu/CMakeLists.txt.
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)

set(CL_MCU_CPU "cortex-m4" CACHE STRING "Cortex-M core: cortex-m4 or cortex-m0plus")
set_property(CACHE CL_MCU_CPU PROPERTY STRINGS cortex-m4 cortex-m0plus)
# try_compile projects see only what is forwarded
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES CL_MCU_CPU)

set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_ASM_COMPILER arm-none-eabi-gcc)
set(CMAKE_AR arm-none-eabi-ar CACHE FILEPATH "")
set(CMAKE_RANLIB arm-none-eabi-ranlib CACHE FILEPATH "")
set(CMAKE_SIZE arm-none-eabi-size CACHE FILEPATH "")

# Soft float ABI on both cores: the library has no floating-point hot path,
# and one ABI keeps the two builds comparable (the M4F's FPU is not used).
set(CMAKE_C_FLAGS_INIT "-mcpu=${CL_MCU_CPU} -mthumb -mfloat-abi=soft")
# No host startup files or OS in the compiler checks: a static library test.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)

set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
