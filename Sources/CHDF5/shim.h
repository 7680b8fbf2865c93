// The HDF5 C library (serial build), used for training checkpoints.
#include <hdf5.h>
