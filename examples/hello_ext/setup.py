"""One CUDA kernel as a torch extension. GPU targets come from TORCH_CUDA_ARCH_LIST,
which wheelfactory sets from --arch (no GPU is needed to build)."""

from setuptools import setup
from torch.utils.cpp_extension import BuildExtension, CUDAExtension

setup(
    ext_modules=[
        CUDAExtension(
            name="hello_ext._C",
            sources=["csrc/scale.cu"],
            # torch >= 2.13 headers need C++20; cpp_extension adds -std=c++17 only when
            # no -std is given
            extra_compile_args={"cxx": ["-O2", "-std=c++20"], "nvcc": ["-O3", "-std=c++20"]},
        )
    ],
    cmdclass={"build_ext": BuildExtension},
)
