// SHA-256 of official release assets, by asset, version and architecture.
//
// Source of every hash below: kubernetes-sigs/kubespray, file
// roles/kubespray_defaults/vars/main/checksums.yml (stored copy at commit
// 005bdce7f1867958838a2d0bb4f7e67893d98f64), whose tables are generated from the upstream releases'
// published checksums (dl.k8s.io `<file>.sha256`, GitHub release `.sha256sum` files). Keys there:
// kubelet_checksums, kubectl_checksums, containerd_archive_checksums (containerd-<v>-linux-<arch>.tar.gz),
// runc_checksums (runc.<arch>), cni_binary_checksums (cni-plugins-linux-<arch>-v<v>.tgz),
// crictl_checksums (crictl-v<v>-linux-<arch>.tar.gz), etcd_binary_checksums (etcd-v<v>-linux-<arch>.tar.gz).
// Only versions the versions table uses (its defaults, plus the previous defaults) are copied; any
// other version needs spec.assets.overrides.<asset> with urls and sha256.
import type { Arch } from '../../engine/host/facts.ts';

export type ChecksumTable = Readonly<Record<string, Readonly<Record<string, Readonly<Partial<Record<Arch, string>>>>>>>;

export const checksums: ChecksumTable = {
  kubelet: {
    '1.35.1': {
      amd64: 'e7343310e03ff0d424df4397bdfa4468947d6d1f0f93dac586c1e8d6e4086d5d',
      arm64: '73475c6db8fd8a9780b1b378fa2f917875e6146166c24603c1abc6eafd4493a8',
    },
    '1.35.0': {
      amd64: '2f4ed7778681649b81244426c29c5d98df60ccabf83d561d69e61c1cbb943ddf',
      arm64: 'aa658d077348b43d238f50966a583f4244b2a7d45590c77b3b165b7d44983ab8',
    },
    '1.34.4': {
      amd64: '03b8fea715a7ef82eeaf518dee34c72670c57cc7bc40dc1320c04fbf4f15172f',
      arm64: 'c78845473c434ee85a2444eeab87f8b20f524e3ab6854a078f79468f44aad8f5',
    },
    '1.33.8': {
      amd64: '1caa69c5328cfa774218f75f0621a6f10a1b97e095af85015f468aeb8fdf956a',
      arm64: 'e835f15be6d8b7b27b963a46c4a054f7663c26741f17e003bfcb8271350cf882',
    },
  },
  kubectl: {
    '1.35.1': {
      amd64: '36e2f4ac66259232341dd7866952d64a958846470f6a9a6a813b9117bd965207',
      arm64: '706256e21a4e9192ee62d1a007ac0bfcff2b0b26e92cc7baad487a6a5d08ff82',
    },
    '1.35.0': {
      amd64: 'a2e984a18a0c063279d692533031c1eff93a262afcc0afdc517375432d060989',
      arm64: '58f82f9fe796c375c5c4b8439850b0f3f4d401a52434052f2df46035a8789e25',
    },
    '1.34.4': {
      amd64: 'd50c359d95e0841eaad08ddc27c7be37cba8fdccfba5c8e2ded65e121ff112db',
      arm64: '5b982c0644ab1e27780246b9085a5886651b4a7ed86243acbb2bacc1bea01dda',
    },
    '1.33.8': {
      amd64: '7f9c3faab7c9f9cc3f318d49eb88efc60eb3b3a7ce9eee5feb39b1280e108a29',
      arm64: '76e284669f1f6343bd9fe2a011757809c8c01cf51da9f85ee6ef4eb93c8393a8',
    },
  },
  containerd: {
    '2.2.1': {
      amd64: 'f5d8e90ecb6c1c7e33ecddf8cc268a93b9e5b54e0e850320d765511d76624f41',
      arm64: 'dac15a0d412a24be8bfe6a40cec8f51829062725169f1e72ac7d120a891ef5b6',
    },
    '2.1.6': {
      amd64: '4793dc5c1f34ebf8402990d0050f3c294aa3c794cd5a4baa403c1cf10602326d',
      arm64: '88d6e32348c36628c8500a630c6dd4b3cb8c680b1d18dc8d1d19041f67757c6e',
    },
    '2.1.4': {
      amd64: '316d510a0428276d931023f72c09fdff1a6ba81d6cc36f31805fea6a3c88f515',
      arm64: '846d13bc2bf1c01ae2f20d13beb9b3a1e50b52c86e955b4ac7d658f5847f2b0e',
    },
    '1.7.30': {
      amd64: 'ca0f27e34411504acd1cd24fcbaa71b9c47d31ce9408c47c54a2dc1810ceb1df',
      arm64: 'a09c3b01b3b6935e839c8a9588b5528c57ebfca4747d816654a7d1e7575c0a63',
    },
    '1.7.28': {
      amd64: '7a8c262deb63becc877e82d23749e4f99f4a17e8e660f9b8c257ca87a5c056b6',
      arm64: '97457594ff8549cb82d664306593cafd3d2c781c706f9fffed885a46d8919bec',
    },
  },
  runc: {
    '1.3.4': {
      amd64: '5966ca40b6187b30e33bfc299c5f1fe72e8c1aa01cf3fefdadf391668f47f103',
      arm64: 'd6dcab36d1b6af1b72c7f0662e5fcf446a291271ba6006532b95c4144e19d428',
    },
    '1.3.0': {
      amd64: '028986516ab5646370edce981df2d8e8a8d12188deaf837142a02097000ae2f2',
      arm64: '85c5e4e4f72e442c8c17bac07527cd4f961ee48e4f2b71797f7533c94f4a52b9',
    },
  },
  'cni-plugins': {
    '1.8.0': {
      amd64: 'ab3bda535f9d90766cccc90d3dddb5482003dd744d7f22bcf98186bf8eea8be6',
      arm64: '57ce466fc3b79db1f19b8f4c63e07a1112306efa53c94fe810a2150dd9e07ddb',
    },
    '1.7.1': {
      amd64: '1a28a0506bfe5bcdc981caf1a49eeab7e72da8321f1119b7be85f22621013098',
      arm64: '119fcb508d1ac2149e49a550752f9cd64d023a1d70e189b59c476e4d2bf7c497',
    },
  },
  crictl: {
    '1.35.0': {
      amd64: '2e141e5b22cb189c40365a11807d69b76b9b3caced89fac2f4ec879408ce2177',
      arm64: '519071de89b64c43e2a1661bb5489c6c3fd5e9e5fcef75e50e542b0c891f1118',
    },
    '1.34.0': {
      amd64: 'a8ff2a3edb37a98daf3aba7c3b284fe0aa5bff24166d896ab9ef64c8913c9f51',
      arm64: 'c31d252e203df5f4cf37f314bd3092eb79087e791631c1e607087c74b6d0423f',
    },
    '1.33.0': {
      amd64: '8307399e714626e69d1213a4cd18c8dec3d0201ecdac009b1802115df8973f0f',
      arm64: 'e1f34918d77d5b4be85d48f5d713ca617698a371b049ea1486000a5e86ab1ff3',
    },
  },
  etcd: {
    '3.5.27': {
      amd64: '0aad9a9e4e0817a021e933f9806a2b2960a62f949ad5a3d6436d8886945cb1bc',
      arm64: '1277309f540c5a0329c428f95455c9f76d24f768c8d28fd2753e891c379053fa',
    },
    '3.5.21': {
      amd64: 'adddda4b06718e68671ffabff2f8cee48488ba61ad82900e639d108f2148501c',
      arm64: '95bf6918623a097c0385b96f139d90248614485e781ec9bee4768dbb6c79c53f',
    },
  },
};
