// The one registration list, in display order. A new component adds one line here.
import type { Component } from '../model/component.ts';
import { nodeFilesComponent } from './node-files.ts';
import { packagesComponent } from '../packages/component.ts';
import { prereqsComponent } from '../node-prereqs/component.ts';
import { kubeletComponent } from '../kubelet/component.ts';
import { controlPlaneComponent } from '../controlplane/component.ts';
import { etcdComponent } from '../etcd/component.ts';
import { kubeProxyComponent } from '../kube-proxy/component.ts';
import { containerdComponent } from '../containerd/component.ts';
import { imagesComponent } from '../images/component.ts';
import { addonsComponent } from '../addons/component.ts';
import { podRoutesComponent } from '../pod-routes/component.ts';

export const components: readonly Component[] = [
  packagesComponent,
  nodeFilesComponent,
  prereqsComponent,
  containerdComponent,
  kubeletComponent,
  etcdComponent,
  controlPlaneComponent,
  kubeProxyComponent,
  podRoutesComponent,
  imagesComponent,
  addonsComponent,
];
